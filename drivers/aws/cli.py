"""`machine gc -d aws`: delete what failed or lost creates left in AWS, after confirmation.

Contributed by the aws driver through the "machine.commands" entry point."""
from __future__ import annotations

import click

from ...cli.common import pass_api


@click.command()
@click.option("-d", "--driver", default="aws", show_default=True, help="Driver whose cloud to clean (aws)")
@click.option("--region", "regions", multiple=True,
              help="Region to look in (repeatable) [default: the regions of AWS records, else the profile's]")
@click.option("--endpoint-url", default="", help="EC2 endpoint (EC2-compatible clouds, tests)")
@click.option("--profile", default="", help="AWS profile (default: boto3's chain)")
@click.option("-y", "--yes", is_flag=True, help="Delete without asking")
@click.option("--dry-run", is_flag=True, help="List only")
@pass_api
def gc(api, driver, regions, endpoint_url, profile, yes, dry_run):
    """List resources tagged as Machine's whose machine has no record, and delete them."""
    from ...driver import DriverContext, get_driver_class
    from ...errors import MachineError, UsageError
    from ...model import Host
    from . import AWSDriver, gc as finder
    from .client import ec2 as make_client
    from .options import AWSConfig

    if get_driver_class(driver) is not AWSDriver:
        raise UsageError(f"gc knows driver aws only, not {driver!r}", "run: machine gc -d aws")
    hosts = [h for _, h in api.store.load_all() if isinstance(h, Host)]
    broken = [n for n, h in api.store.load_all() if not isinstance(h, Host)]
    if broken:
        raise MachineError(f"cannot read the records of {', '.join(broken)}: their resources could look orphaned",
                           "fix or remove those records first")
    tokens, ids = finder.known_from_records(hosts)
    cfg = AWSConfig(endpoint_url=endpoint_url, profile=profile)
    if not regions:
        regions = sorted({h.driver.region for h in hosts if isinstance(h.driver, AWSConfig) and h.driver.region}
                         | {getattr(h.driver, "extra", {}).get("Region") for h in hosts
                            if h.driver_name in ("aws", "amazonec2") and getattr(h.driver, "extra", {}).get("Region")})
        if not regions:
            from .client import region_of

            regions = [region_of(cfg)]
    orphans = []
    for region in regions:
        orphans += finder.find(make_client(cfg, region), region, tokens, ids)
    if not orphans:
        click.echo("nothing to collect", err=True)
        return
    click.echo(f"{'KIND':<15} {'ID':<28} {'REGION':<14} {'MACHINE':<20} DETAIL")
    for o in orphans:
        click.echo(f"{o.kind:<15} {o.id:<28} {o.region:<14} {o.machine or '-':<20} {o.detail}")
    if dry_run:
        return
    if not yes and not click.confirm(f"Delete these {len(orphans)} resource(s)?", default=False, err=True):
        click.echo("nothing deleted", err=True)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="machine-gc-") as tmp:
        for region in regions:
            entries = [{"kind": o.kind, "id": o.id, "region": region} for o in orphans if o.region == region]
            if not entries:
                continue
            ctx = DriverContext.scratch("gc", tmp, root=tmp)
            ctx.journal.entries.extend(entries)
            d = AWSDriver(AWSConfig(endpoint_url=endpoint_url, profile=profile, region=region), ctx)
            d.remove()
    click.echo(f"deleted {len(orphans)} resource(s)", err=True)
