"""INBOUND_SHARDS: which queue an integration's messages go to, the queue names, the setting, the triggers."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import azure.functions as func
import pytest

from blueprints.engine import register_shard_triggers
from devhost.functions import QueueFunction, discover_functions
from shared.errors import ConfigError
from shared.messages.shards import MAX_INBOUND_SHARDS, InboundShards, shard_index, shard_suffix
from shared.services import own_names
from shared.settings import Settings, inbound_shards_from_environ
from shared.storage.names import StorageNames
from tests.twins.clock import FakeTime
from tests.twins.queues import MemoryQueue

ROOT = Path(__file__).resolve().parents[2]


# --- routing ---------------------------------------------------------------------------------------


def test_an_integration_always_gets_the_same_shard_in_every_process_and_release():
    # Pinned: a change here moves live integrations to other queues, so it must be deliberate.
    pinned = {"returns": 0, "orders": 1, "prices": 2, "shipments": 3}

    assert {name: shard_index(name, 4) for name in pinned} == pinned
    assert [shard_index("orders", n) for n in (1, 2, 16)] == [0, 1, 13]


def test_the_shard_does_not_depend_on_the_process_hash_seed():
    # Given two interpreters with different string hash seeds
    code = "from shared.messages.shards import shard_index; print([shard_index(f'i{n}', 7) for n in range(50)])"
    answers = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout  # fmt: skip
        for seed in ("1", "2")
    }

    # Then both route every integration alike
    assert len(answers) == 1


@pytest.mark.parametrize("shards", [2, 4, 16])
def test_many_integrations_spread_evenly_over_the_shards(shards):
    # Given 4,000 integration ids of the kinds people name them
    names = [f"{kind}-{n}" for kind in ("orders", "erp", "crm", "edi") for n in range(1000)]

    # When each is routed
    counts = collections.Counter(shard_index(name, shards) for name in names)

    # Then every shard takes its share, within 20 % of an even split
    even = len(names) / shards
    assert set(counts) == set(range(shards))
    assert all(0.8 * even <= count <= 1.2 * even for count in counts.values()), counts


def test_with_one_shard_everything_goes_to_inbound():
    assert {shard_index(f"i{n}", 1) for n in range(100)} == {0}


@pytest.mark.parametrize("shards", [0, MAX_INBOUND_SHARDS + 1])
def test_a_shard_count_outside_1_to_16_is_refused(shards):
    with pytest.raises(ValueError):
        shard_index("orders", shards)


async def test_a_message_is_sent_to_its_integrations_shard_and_depths_are_per_shard():
    # Given four shard queues
    clock = FakeTime().now
    queues = [MemoryQueue(name, clock) for name in ("inbound", "inbound-1", "inbound-2", "inbound-3")]
    inbound = InboundShards(queues)

    # When messages of four integrations are sent, one of them twice
    for integration in ("returns", "orders", "prices", "shipments", "orders"):
        await inbound.send(integration, integration)

    # Then each is on its integration's shard, and depths are counted per shard
    assert [queue.sent for queue in queues] == [["returns"], ["orders", "orders"], ["prices"], ["shipments"]]
    assert await inbound.depths() == {"inbound": 1, "inbound-1": 2, "inbound-2": 1, "inbound-3": 1}
    assert (await inbound.depth_of("orders"), await inbound.deepest()) == (2, 2)


# --- names -----------------------------------------------------------------------------------------


def test_shard_zero_is_inbound_and_the_others_carry_their_number_after_the_prefix():
    names = StorageNames("t1")

    assert names.inbound_shards(3) == ["t1inbound", "t1inbound-1", "t1inbound-2"]
    assert names.inbound == names.inbound_shard(0) == "t1inbound"
    assert names.every_inbound_shard[-1] == "t1inbound-15"
    with pytest.raises(ValueError):
        shard_suffix(MAX_INBOUND_SHARDS)


def test_no_pickup_source_may_read_any_shard_or_its_poison_queue_whatever_the_setting():
    own = own_names(Settings.from_env({"REBOUND_PREFIX": "t1", "INBOUND_SHARDS": "2"}))

    queues = {name for kind, _, name in own if kind == "storage_queue"}
    assert {"t1inbound", "t1inbound-1", "t1inbound-15", "t1inbound-15-poison", "t1inbound-poison"} <= queues


# --- the setting -----------------------------------------------------------------------------------


def test_inbound_shards_defaults_to_one_and_takes_one_to_sixteen():
    assert Settings.from_env({}).inbound_shards == 1
    assert Settings.from_env({"INBOUND_SHARDS": "16"}).inbound_shards == 16


@pytest.mark.parametrize("value", ["0", "17", "four"])
def test_inbound_shards_outside_one_to_sixteen_is_a_config_error_naming_it(value):
    with pytest.raises(ConfigError, match="INBOUND_SHARDS"):
        Settings.from_env({"INBOUND_SHARDS": value})


@pytest.mark.parametrize(("value", "shards"), [("", 1), ("4", 4), ("16", 16), ("0", 1), ("17", 1), ("four", 1)])
def test_read_at_import_the_setting_never_raises(value, shards):
    # An import error would fail worker indexing: what the settings object refuses registers shard 0 only.
    assert inbound_shards_from_environ({"INBOUND_SHARDS": value}) == shards


# --- the triggers ----------------------------------------------------------------------------------


def test_one_queue_trigger_per_shard_each_its_own_function_on_its_own_queue():
    # Given a blueprint with the triggers of four shards
    blueprint = func.Blueprint()
    register_shard_triggers(blueprint, 4)
    app = func.FunctionApp()
    app.register_functions(blueprint)

    # Then the worker would index four functions, each bound to its shard's queue
    bindings = {f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()] for f in app.get_functions()}
    assert {name: [b["queueName"] for b in raw] for name, raw in bindings.items()} == {
        "deliver_inbound": ["%REBOUND_PREFIX%inbound"],
        "deliver_inbound_1": ["%REBOUND_PREFIX%inbound-1"],
        "deliver_inbound_2": ["%REBOUND_PREFIX%inbound-2"],
        "deliver_inbound_3": ["%REBOUND_PREFIX%inbound-3"],
    }
    assert {b["type"] for raw in bindings.values() for b in raw} == {"queueTrigger"}

    # And devhost resolves each to a valid queue name with the prefix, the poison queue beside it
    settings = {"REBOUND_PREFIX": "t1", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    blueprint = func.Blueprint()
    register_shard_triggers(blueprint, 4)
    app = func.FunctionApp()
    app.register_functions(blueprint)
    queues = [f for f in discover_functions(app, settings, ZoneInfo("UTC")) if isinstance(f, QueueFunction)]
    assert [(q.queue_name, q.poison_queue_name) for q in queues] == [
        ("t1inbound", "t1inbound-poison"),
        ("t1inbound-1", "t1inbound-1-poison"),
        ("t1inbound-2", "t1inbound-2-poison"),
        ("t1inbound-3", "t1inbound-3-poison"),
    ]


def test_the_app_registers_the_shard_triggers_from_the_setting_when_it_is_imported():
    # Given the app imported the way the worker imports it, with INBOUND_SHARDS=3 in its settings
    code = (
        "import function_app; "
        "print(sorted(f.get_function_name() for f in function_app.app.get_functions() "
        "if f.get_function_name().startswith('deliver_inbound')))"
    )
    env = {**os.environ, "INBOUND_SHARDS": "3"}
    listed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)

    # Then it has one trigger per shard
    assert listed.stdout.strip() == "['deliver_inbound', 'deliver_inbound_1', 'deliver_inbound_2']"
