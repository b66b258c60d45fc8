from harness.fixtures import engine_image, vm_store_path  # noqa: F401
