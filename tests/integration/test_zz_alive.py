"""Runs last (file order): after everything above, the shared node is still fine."""
from conftest import health


def test_main_node_survived_everything(main_node, api):
    assert main_node.alive(), f"main node died: rc={main_node.proc.returncode}\n{main_node.log()[-3000:]}"
    assert health(main_node.ip) == (200, "running")
    assert api.admin("listkeys").status == 200
    log = main_node.log()
    assert "panicked" not in log, log[log.find("panicked") - 500:][:2000]
