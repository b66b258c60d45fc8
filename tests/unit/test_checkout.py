"""The code under test is this checkout's, all of it (conftest refuses to start otherwise)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from harness.checkout import REPO, checkout_mismatches


def test_every_package_comes_from_this_checkout():
    assert checkout_mismatches() == []


def test_a_foreign_tree_is_detected(tmp_path):
    # Simulate an editable install of another checkout: a copy of the packages first on sys.path.
    other = tmp_path / "other"
    (other / "machine").mkdir(parents=True)
    (other / "machine" / "__init__.py").write_text("__version__ = 'other'\n")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(other)!r})
        sys.path.insert(1, {os.path.join(REPO, 'tests')!r})
        from harness.checkout import checkout_mismatches
        bad = checkout_mismatches({REPO!r})
        print(bad)
        assert bad and bad[0].startswith("machine from " + {str(other / 'machine')!r}), bad
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
