"""infra/: every template parses, the security posture the issue promises is in the templates, and
the azd wiring (azure.yaml, main.parameters.json) matches main.bicep.

checkov (`make infra-check`) scans the native resources; these tests pin what checkov cannot see
(the parameters we pass to Azure Verified Modules) or does not check for Bicep (shared-key access,
the exact role set, secrets in outputs).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.settings import Settings
from shared.storage.names import StorageNames
from tests.unit.test_infra_settings import (
    INFRA,
    MAIN,
    UNRESOLVED,
    Scope,
    bicep_environment,
    bicep_files,
    body,
    evaluate,
    parse,
)

ROOT = INFRA.parent
MODULES = INFRA / "modules"

#: Built-in role definition ids (the same in every tenant) of every role the app's identity holds.
ROLE_NAMES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
}

#: (scope in rbac.bicep, role): exactly the data roles the app needs. Why each: the comment above it.
EXPECTED_ROLES = {
    ("storage", "Storage Blob Data Owner"),
    ("storage", "Storage Queue Data Contributor"),
    ("storage", "Storage Table Data Contributor"),
    ("recoveryStorage", "Storage Queue Data Contributor"),
    ("recoveryStorage", "Storage Blob Data Contributor"),
    ("serviceBusQueue", "Azure Service Bus Data Sender"),
    ("serviceBusQueue", "Azure Service Bus Data Receiver"),
    ("applicationInsights", "Monitoring Metrics Publisher"),
    ("keyVault", "Key Vault Secrets User"),
}

#: The templates infra/ deploys: main.bicep and its modules.
DEPLOYED_TEMPLATES = {"main.bicep", "function-app.bicep", "rbac.bicep", "storage-account.bicep"}

_SKIP = re.compile(r"checkov:skip=(\S+?)(?::\s*(.*))?$")
_SECRETISH = re.compile(r"key|secret|password|connectionstring|sas|token", re.IGNORECASE)
#: Names that look secret-ish to _SECRETISH but name a resource: the vault's name is not its content.
_NOT_SECRETS = re.compile(r"KEY_VAULT_NAME", re.IGNORECASE)


def resources(path: Path, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in parse(path).get("resources", {}).items()
        if resource["type"] == resource_type and not resource["existing"]
    }


def module_call(name: str) -> dict[str, Any]:
    return body(parse(MAIN)["modules"][name])


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path):
    assert parse(path)


def test_storage_accounts_are_keyless_https_only_tls12_and_private_to_anonymous_readers():
    # Given the one storage account template both accounts use
    (account,) = resources(MODULES / "storage-account.bicep", "Microsoft.Storage/storageAccounts").values()
    properties = body(account)["properties"]

    # Then Entra ID is the only way in, over HTTPS with TLS 1.2+, and no blob is public
    assert properties["allowSharedKeyAccess"] is False
    assert properties["defaultToOAuthAuthentication"] is True
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["allowBlobPublicAccess"] is False
    assert properties["isLocalUserEnabled"] is False
    assert {module_call("storage")["params"]["name"], module_call("recoveryStorage")["params"]["name"]} == {
        "storageAccountName",
        "recoveryStorageAccountName",
    }


def test_the_recovery_account_is_deployed_to_the_recovery_location():
    assert module_call("recoveryStorage")["params"]["location"] == "recoveryLocation"
    assert module_call("storage")["params"]["location"] == "location"
    recovery_location = parse(MAIN)["parameters"]["recoveryLocation"]
    assert recovery_location.get("default") is None, "the recovery region must be chosen, not defaulted"


def test_payload_blobs_are_deleted_one_day_after_the_retention_period_as_a_backstop():
    # Given the primary account's lifecycle parameters and the code's container name
    params = module_call("storage")["params"]
    scope = Scope(MAIN)
    prefix = evaluate("prefix", scope)
    retention_days = evaluate("failureRetentionDays", scope)

    # Then the rule covers exactly the payloads container and deletes a day after the purge would
    assert [evaluate(p, scope) for p in params["lifecycleDeletePrefixes"]] == [f"{StorageNames(prefix).payloads}/"]
    assert evaluate(params["deleteAfterDays"], scope) == retention_days + 1
    assert Settings.from_env({"FAILURE_RETENTION_DAYS": str(retention_days)}).failure_retention_days == retention_days


def test_the_app_holds_exactly_the_data_roles_it_needs_each_with_a_reason():
    # Given the role assignments of modules/rbac.bicep
    path = MODULES / "rbac.bicep"
    template = parse(path)
    lines = path.read_text().splitlines()
    role_ids = template["variables"]["roles"]["value"]
    granted = set()
    for name, assignment in resources(path, "Microsoft.Authorization/roleAssignments").items():
        config = body(assignment)
        role = config["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        role_key = role["operator"]["operands"]["operand_2"]
        granted.add((config["scope"], ROLE_NAMES[role_ids[role_key]]))
        # Then each goes to the app's identity as a service principal
        assert config["properties"]["principalId"] == "principalId", name
        assert config["properties"]["principalType"] == "ServicePrincipal", name
        # And says why, in the comment right above it
        start = next(i for i, line in enumerate(lines) if line.startswith(f"resource {name} "))
        assert lines[start - 1].startswith("// "), f"role assignment {name} has no comment saying why"

    # And the set is exactly the expected one: nothing broader, nothing missing
    assert granted == EXPECTED_ROLES


def test_no_template_reads_or_outputs_a_secret():
    # Given every template (and at least the four this project deploys, so the loop is never vacuous)
    paths = bicep_files()
    assert {p.name for p in paths} >= DEPLOYED_TEMPLATES, [p.name for p in paths]
    for path in paths:
        text = path.read_text()
        # Then no key is ever listed (keys are disabled anyway) ...
        assert not re.search(r"\blist(Keys|ConnectionStrings|AccountSas|ServiceSas)\s*\(", text, re.IGNORECASE), path
        # ... and no output is secure or named like a secret
        for name, output in parse(path).get("outputs", {}).items():
            assert not _SECRETISH.search(_NOT_SECRETS.sub("", name)), f"{path.name}: output {name}"
            assert not any(d["type"] == "secure" for d in output["decorators"]), f"{path.name}: output {name}"


@pytest.mark.parametrize("params", [{"deployServiceBus": False}, {"deployServiceBus": True}], ids=["storage", "bus"])
def test_no_app_setting_carries_a_key(params):
    # Given the deployed app settings, among them the identity form of the storage connection
    env = bicep_environment(**params)
    assert "AzureWebJobsStorage__credential" in env, sorted(env)
    for name, value in env.items():
        assert not re.search(r"AccountKey=|SharedAccessKey=|SharedAccessSignature", value), name


def test_every_checkov_skip_has_a_specific_written_reason():
    skips = 0
    for path in bicep_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "checkov:skip" not in line:
                continue
            skips += 1
            match = _SKIP.search(line)
            assert match and re.fullmatch(r"CKV2?_AZURE_\d+", match.group(1)), f"{path.name}:{number}: {line}"
            reason = match.group(2) or ""
            assert len(reason) >= 60, f"{path.name}:{number}: {match.group(1)} needs a specific reason"
    assert skips, "expected the documented skips (see infra/README.md)"


def test_verified_modules_are_pinned_and_given_their_security_settings_explicitly():
    # Given every registry module main.bicep calls
    modules = parse(MAIN)["modules"]
    registry = {name: m for name, m in modules.items() if m["detail"].get("public")}

    # Then each is an Azure Verified Module at an exact version
    for name, module in registry.items():
        assert module["detail"]["path"].startswith("avm/res/"), name
        assert re.fullmatch(r"\d+\.\d+\.\d+", module["detail"]["tag"]), name
    # And what checkov cannot see inside them is set here
    insights = module_call("applicationInsights")["params"]
    assert insights["disableLocalAuth"] is True
    bus = module_call("serviceBus")["params"]
    assert bus["disableLocalAuth"] is True
    assert bus["minimumTlsVersion"] == "1.2"
    plan = module_call("plan")["params"]
    assert plan["skuName"] == "FC1"


def test_the_service_bus_recovery_queue_is_the_one_the_code_uses_and_keeps_every_message():
    # Given the queue the namespace module creates and the setting the app gets
    (queue,) = module_call("serviceBus")["params"]["queues"]
    environ = bicep_environment(deployServiceBus=True)

    # Then they name the same queue, without duplicate detection (a re-parked message is not a duplicate)
    assert evaluate(queue["name"], Scope(MAIN)) == environ["RECOVERY_SERVICE_BUS_QUEUE"]
    assert queue["requiresDuplicateDetection"] is False
    assert "defaultMessageTimeToLive" not in queue


def test_the_function_app_runs_python_311_on_flex_consumption_with_its_identity():
    # Given the Function App resource
    (site,) = resources(MODULES / "function-app.bicep", "Microsoft.Web/sites").values()
    config = body(site)
    properties = config["properties"]

    # Then it is Flex Consumption's Python 3.11, deployed from blob storage with the user-assigned identity
    app_config = properties["functionAppConfig"]
    assert app_config["runtime"] == {"name": "python", "version": "3.11"}
    assert app_config["deployment"]["storage"]["type"] == "blobContainer"
    assert app_config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert config["identity"]["type"] == "UserAssigned"
    assert properties["httpsOnly"] is True
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert properties["siteConfig"]["ftpsState"] == "Disabled"
    # And basic-auth publishing is off
    policies = resources(MODULES / "function-app.bicep", "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {(body(p)["name"], body(p)["properties"]["allow"]) for p in policies.values()} == {
        ("ftp", False),
        ("scm", False),
    }


def test_the_key_vault_is_rbac_only_purge_protected_and_optional():
    # Given the vault template and how main.bicep calls it
    (vault,) = resources(MODULES / "key-vault.bicep", "Microsoft.KeyVault/vaults").values()
    properties = body(vault)["properties"]
    call = parse(MAIN)["modules"]["keyVault"]

    # Then access is Azure RBAC only, deletes are recoverable and cannot be purged early
    assert properties["enableRbacAuthorization"] is True
    assert properties["accessPolicies"] == []
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True
    assert not any(properties[flag] for flag in ("enabledForDeployment", "enabledForTemplateDeployment"))
    # And the vault exists only when asked for (off by default)
    assert call["config"]["condition"] == "deployKeyVault"
    assert parse(MAIN)["parameters"]["deployKeyVault"]["default"] is False


def test_key_vault_references_resolve_with_the_apps_own_identity():
    # Given the Function App
    (site,) = resources(MODULES / "function-app.bicep", "Microsoft.Web/sites").values()

    # Then the identity the platform uses for Key Vault references is the user-assigned one it runs as
    assert body(site)["properties"]["keyVaultReferenceIdentity"] == "identityId"
    assert list(body(site)["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]


def test_endpoint_secrets_are_key_vault_references_and_the_only_settings_headers_may_send():
    # Given a deployment with a vault and two endpoint secrets, and one without
    names = ["ORDERS_TOKEN", "ERP_API_KEY"]
    with_vault = bicep_environment(deployKeyVault=True, endpointSecretSettings="ORDERS_TOKEN, ERP_API_KEY")
    without = bicep_environment(endpointSecretSettings="ORDERS_TOKEN,ERP_API_KEY")

    # Then with the vault each name is a Key Vault reference, and exactly those names are allowlisted
    assert Settings.from_env(with_vault).endpoint_secret_settings == frozenset(names)
    for name in names:
        assert with_vault[name].startswith("@Microsoft.KeyVault(SecretUri=https://"), name
        assert with_vault[name].endswith("/)"), name
    # And without it no setting may be referenced and no reference is deployed
    assert Settings.from_env(without).endpoint_secret_settings == frozenset()
    assert not set(names) & set(without)


@pytest.mark.parametrize("params", [{}, {"deployServiceBus": True}, {"deployKeyVault": True}])
def test_endpoints_on_private_addresses_are_refused_in_azure(params):
    assert Settings.from_env(bicep_environment(**params)).allow_private_endpoints is False


def test_main_parameters_feed_main_bicep_from_azd_environment_variables():
    # Given main.parameters.json and main.bicep's parameters
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = parse(MAIN)["parameters"]

    # Then every value is an azd env reference to a declared parameter, and every required one is fed
    for name, entry in parameters.items():
        assert name in declared, f"main.parameters.json sets unknown parameter {name}"
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", entry["value"]), f"{name}: {entry['value']}"
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert {"environmentName", "location", "recoveryLocation"} <= required
    assert required <= set(parameters), f"not fed by main.parameters.json: {required - set(parameters)}"
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"


def test_azure_yaml_deploys_this_folder_as_the_python_function_app():
    text = (ROOT / "azure.yaml").read_text()
    service = re.search(r"^services:\n  api:\n((?:    .*\n)+)", text, re.MULTILINE)
    assert service, "azure.yaml needs service `api`"
    fields = dict(line.strip().split(": ", 1) for line in service.group(1).splitlines())
    assert fields == {"project": ".", "language": "python", "host": "function"}
    assert re.search(r"^  path: infra$", text, re.MULTILINE)


def test_outputs_azd_needs_are_there_and_resolve_without_secrets():
    outputs = parse(MAIN)["outputs"]
    for name in ("AZURE_LOCATION", "AZURE_RESOURCE_GROUP", "SERVICE_API_NAME", "AZURE_RECOVERY_LOCATION"):
        assert name in outputs
    assert evaluate(outputs["REBOUND_PREFIX"]["value"], Scope(MAIN)) not in ("", UNRESOLVED)
