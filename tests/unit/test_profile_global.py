"""The profile names a global database (and its member clusters) for a Global Database game day on AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.environments import AllowedGlobalCluster, TargetUnavailable, load_profile

MEMBERS = ('[[clusters]]\nidentifier = "orders"\nregion = "us-east-1"\npassword_env = "PW"\n'
           '[[clusters]]\nidentifier = "orders-west"\nregion = "us-west-2"\npassword_env = "PW"\n')


def test_a_global_database_is_named_with_the_region_to_ask(tmp_path: Path) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(MEMBERS + '[[global_clusters]]\nidentifier = "orders-global"\nregion = "us-east-1"\n')
    profile = load_profile(path)
    assert profile.global_clusters == [AllowedGlobalCluster("orders-global", "us-east-1")]
    assert [(c.identifier, c.region) for c in profile.clusters] == [("orders", "us-east-1"),
                                                                     ("orders-west", "us-west-2")]
    path.write_text(MEMBERS)
    assert load_profile(path).global_clusters == []


def test_a_global_database_without_its_region_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(MEMBERS + '[[global_clusters]]\nidentifier = "orders-global"\n')
    with pytest.raises(TargetUnavailable, match="global cluster #1 lacks region"):
        load_profile(path)
