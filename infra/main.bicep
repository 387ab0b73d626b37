// Rebound on Azure: a Function App on Flex Consumption, keyless storage in two regions, optional
// Service Bus for the recovery flow, Log Analytics + Application Insights. `azd up` deploys it.
// Which resources use Azure Verified Modules and which are native (and why): infra/README.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds the names of every resource (a short unique token).')
param environmentName string

@minLength(1)
@description('Region of everything but the recovery account. Must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@minLength(1)
@description('Region of the recovery storage account: the separate failure domain. Choose another region than location (e.g. its pair) that your data may live in.')
@metadata({
  azd: {
    type: 'location'
  }
})
param recoveryLocation string

@description('Resource group name; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@minLength(1)
@maxLength(20)
@description('REBOUND_PREFIX: prepended to every queue, table and container name (lowercase letters and digits, starting with a letter). Never empty in Azure: queue triggers name %REBOUND_PREFIX%inbound, and the host does not resolve an empty setting (Azure/Azure-Functions#1189).')
param prefix string = 'rb'

@minValue(1)
@maxValue(365)
@description('FAILURE_RETENTION_DAYS: failures and their payloads older than this are purged; a lifecycle rule deletes payload blobs one day later as a backstop.')
param failureRetentionDays int = 7

@minValue(1)
@maxValue(3650)
@description('AUDIT_RETENTION_DAYS: audit entries (who changed a config, started, cancelled or finished a job, replayed recovery) older than this are purged by the retention timer.')
param auditRetentionDays int = 365

@description('RETENTION_SCHEDULE: six-field NCRONTAB of the retention purge timer.')
param retentionSchedule string = '0 17 * * * *'

@description('RECOVERY_SCHEDULE: six-field NCRONTAB of the recovery sweep.')
param recoverySchedule string = '0 */5 * * * *'

@description('PICKUP_SCHEDULE: six-field NCRONTAB of the timer that runs the pickup sources that are due (each source keeps its own interval_seconds).')
param pickupSchedule string = '*/15 * * * * *'

@minValue(1)
@maxValue(86400)
@description('MIN_PICKUP_INTERVAL_S: the shortest interval_seconds a pickup source may ask for.')
param minPickupIntervalSeconds int = 60

@minValue(1)
@maxValue(16)
@description('INBOUND_SHARDS: how many queues the engine reads, inbound and inbound-1 ... inbound-<N-1>, each integration on one by a stable hash. One Storage queue serves about 2,000 messages/s, an account about 20,000: raise it when one integration mix needs more than one queue takes (docs/scaling.md has a worked sizing example). The code creates the queues on first use.')
param inboundShards int = 1

@description('Deploy a Service Bus namespace (Standard) with the recovery queue and use it as the recovery flow (RECOVERY_BACKEND=servicebus). Off: the recovery queue lives on the recovery storage account.')
param deployServiceBus bool = false

@description('Deploy Azure Communication Services email (an Azure managed domain) for email alerts (ALERT_EMAIL_BACKEND=acs), sent with the app\'s identity. Off: email alert rules are refused; webhook and Teams alerts work either way.')
param deployAlertEmail bool = false

@description('ACS data location of the email resources (with deployAlertEmail).')
param alertEmailDataLocation string = 'Europe'

@description('ALERT_SCHEDULE: six-field NCRONTAB of the alert timer (every rule is evaluated; failed notices are sent again).')
param alertSchedule string = '0 * * * * *'

@description('Deploy a Key Vault (RBAC only, purge protection) for secrets that endpoint headers send, e.g. a receiver\'s token: every name in endpointSecretSettings becomes an app setting holding a Key Vault reference, resolved by the platform with the app\'s identity (Key Vault Secrets User). Off: no vault, and endpoint headers may reference no app setting.')
param deployKeyVault bool = false

@description('ENDPOINT_SECRET_SETTINGS (with deployKeyVault): comma-separated app setting names an endpoint header may reference as %NAME% (letters, digits and underscores), e.g. ORDERS_TOKEN,ERP_API_KEY. Each becomes @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<NAME with _ as ->/): store the secret in the vault under that name. No other app setting can ever be sent to a receiver.')
param endpointSecretSettings string = ''

@minLength(36)
@maxLength(36)
@description('AZURE_AUTH_CLIENT_ID: client id of the Entra ID app registration App Service Authentication signs users and automation clients in with; its app roles Rebound.Reader/Operator/Admin are what the app checks. The preprovision hook (infra/hooks/app_registration.py) creates or updates it and stores the id in the azd environment.')
param authClientId string

@description('Replication of the primary storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_GRS'

@description('Replication of the recovery storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param recoveryStorageSkuName string = 'Standard_GRS'

@minValue(1)
@maxValue(1000)
@description('Flex Consumption: most instances the app scales out to.')
param maximumInstanceCount int = 100

@allowed([
  2048
  4096
])
@description('Flex Consumption: memory per instance.')
param instanceMemoryMB int = 2048

@allowed([
  30
  60
  90
  120
  180
  270
  365
  550
  730
])
@description('Days Log Analytics keeps logs and Application Insights telemetry (values Application Insights accepts).')
param logRetentionDays int = 30

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var storageAccountName = '${abbrs.storageStorageAccounts}${resourceToken}'
// The recovery account's name follows its region: pointing recoveryLocation elsewhere creates a new
// account there (an account cannot move) and leaves the old one to drain and delete (README).
var recoveryStorageAccountName = '${abbrs.storageStorageAccounts}rec${toLower(uniqueString(subscription().id, environmentName, recoveryLocation))}'
var serviceBusNamespaceName = '${abbrs.serviceBusNamespaces}${resourceToken}'
var serviceBusQueueName = 'recovery'
var keyVaultName = '${abbrs.keyVaultVaults}${resourceToken}'
var communicationServiceName = 'acs-${resourceToken}'
var emailServiceName = 'acsmail-${resourceToken}'
var storageSuffix = environment().suffixes.storage

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// The one identity the app runs as; every data role in modules/rbac.bicep is granted to it.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.7.0' = {
  name: 'plan'
  scope: rg
  params: {
    name: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    kind: 'functionapp'
    skuName: 'FC1'
    reserved: true
    zoneRedundant: false
  }
}

// AzureWebJobsStorage: host state, the inbound/jobs queues, every table, the payloads container and
// the deployment package.
module storage 'modules/storage-account.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageAccountName
    location: location
    tags: tags
    skuName: storageSkuName
    containers: [
      deploymentContainerName
    ]
    // Backstop for the retention timer (FAILURE_RETENTION_DAYS): payload blobs it missed go a day later.
    lifecycleDeletePrefixes: [
      '${prefix}payloads/'
    ]
    deleteAfterDays: failureRetentionDays + 1
  }
}

// RecoveryStorage: the recovery queue and its payload container, in another region, so an outage of
// the primary account or region leaves somewhere to park messages.
module recoveryStorage 'modules/storage-account.bicep' = {
  name: 'recoveryStorage'
  scope: rg
  params: {
    name: recoveryStorageAccountName
    location: recoveryLocation
    tags: tags
    skuName: recoveryStorageSkuName
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.15.1' = {
  name: 'logAnalytics'
  scope: rg
  params: {
    name: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    location: location
    tags: tags
    dataRetention: logRetentionDays
  }
}

module applicationInsights 'br/public:avm/res/insights/component:0.7.1' = {
  name: 'applicationInsights'
  scope: rg
  params: {
    name: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    applicationType: 'web'
    workspaceResourceId: logAnalytics.outputs.resourceId
    retentionInDays: logRetentionDays
    // Entra ID-authenticated ingestion only (Monitoring Metrics Publisher, modules/rbac.bicep).
    disableLocalAuth: true
  }
}

// Optional recovery flow on Service Bus. The security-relevant settings are explicit here because the
// module's internals are invisible to checkov: no SAS (local auth off), TLS 1.2.
module serviceBus 'br/public:avm/res/service-bus/namespace:0.16.0' = if (deployServiceBus) {
  name: 'serviceBus'
  scope: rg
  params: {
    name: serviceBusNamespaceName
    location: location
    tags: tags
    skuObject: {
      name: 'Standard'
    }
    zoneRedundant: false
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    // Reached from Flex Consumption without VNet integration, with Entra ID only (see above).
    publicNetworkAccess: 'Enabled'
    queues: [
      {
        name: serviceBusQueueName
        // No duplicate detection: the same message may be parked again minutes after a reinsert,
        // and it must not be dropped as a duplicate. Messages never expire (service default).
        requiresDuplicateDetection: false
        lockDuration: 'PT1M'
        maxDeliveryCount: 10
      }
    ]
  }
}

// Optional vault for the secrets endpoint headers reference (ENDPOINT_SECRET_SETTINGS).
module keyVault 'modules/key-vault.bicep' = if (deployKeyVault) {
  name: 'keyVault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
  }
}

// Optional email for alerts: ACS with an Azure managed domain, the identity allowed to send through it.
module alertEmail 'modules/alert-email.bicep' = if (deployAlertEmail) {
  name: 'alertEmail'
  scope: rg
  params: {
    communicationServiceName: communicationServiceName
    emailServiceName: emailServiceName
    dataLocation: alertEmailDataLocation
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    recoveryStorageAccountName: recoveryStorage.outputs.name
    applicationInsightsName: applicationInsights.outputs.name
    serviceBusNamespaceName: deployServiceBus ? serviceBusNamespaceName : ''
    serviceBusQueueName: serviceBusQueueName
    keyVaultName: deployKeyVault ? keyVaultName : ''
  }
  dependsOn: [
    serviceBus
    keyVault
  ]
}

// Identity-based connections (the Functions conventions shared/settings.py reads): no keys anywhere.
var storageConnectionSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: 'https://${storageAccountName}.blob.${storageSuffix}'
  AzureWebJobsStorage__queueServiceUri: 'https://${storageAccountName}.queue.${storageSuffix}'
  AzureWebJobsStorage__tableServiceUri: 'https://${storageAccountName}.table.${storageSuffix}'
  // The code uses queues and blobs on the recovery account, no tables (and holds no table role there).
  RecoveryStorage__credential: 'managedidentity'
  RecoveryStorage__clientId: identity.outputs.clientId
  RecoveryStorage__blobServiceUri: 'https://${recoveryStorageAccountName}.blob.${storageSuffix}'
  RecoveryStorage__queueServiceUri: 'https://${recoveryStorageAccountName}.queue.${storageSuffix}'
}

// The connection RECOVERY_SERVICE_BUS_CONNECTION names, only when Service Bus is deployed.
// (Public-cloud namespace suffix; sovereign clouds use another.)
var serviceBusConnectionSettings = deployServiceBus ? {
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identity.outputs.clientId
  ServiceBusConnection__fullyQualifiedNamespace: '${serviceBusNamespaceName}.servicebus.windows.net'
} : {}

// The secrets endpoint headers may send: one Key Vault reference per name (the secret's name in the
// vault is the setting's, with '-' for '_', which secret names cannot hold). Resolved by the platform
// with the identity keyVaultReferenceIdentity names; the code only ever sees the value.
var endpointSecretNames = empty(endpointSecretSettings) ? [] : split(replace(endpointSecretSettings, ' ', ''), ',')
var endpointSecretReferences = [for name in endpointSecretNames: {
  name: name
  value: '@Microsoft.KeyVault(SecretUri=https://${keyVaultName}${environment().suffixes.keyvaultDns}/secrets/${replace(name, '_', '-')}/)'
}]

// Every other setting the code reads, at the code's defaults (README "Settings"); edit here to tune.
var appBehaviourSettings = {
  REBOUND_PREFIX: prefix
  FAILURE_RETENTION_DAYS: string(failureRetentionDays)
  AUDIT_RETENTION_DAYS: string(auditRetentionDays)
  RETENTION_SCHEDULE: retentionSchedule
  RECOVERY_SCHEDULE: recoverySchedule
  RECOVERY_BACKEND: deployServiceBus ? 'servicebus' : 'storage'
  RECOVERY_SERVICE_BUS_CONNECTION: 'ServiceBusConnection'
  RECOVERY_SERVICE_BUS_QUEUE: serviceBusQueueName
  RECOVERY_PARK_DELAY_S: '30'
  RECOVERY_MAX_REINSERTS: '3'
  RECOVERY_BATCH_SIZE: '500'
  ENDPOINT_RETRY_WINDOW_S: '60'
  ENDPOINT_RETRY_MAX_ATTEMPTS: '4'
  ENDPOINT_RETRY_BASE_DELAY_S: '2'
  MAX_MESSAGE_BYTES: '10485760'
  MAX_INBOUND_DEPTH: '1000'
  INBOUND_SHARDS: string(inboundShards)
  STORAGE_TIMEOUT_S: '10'
  JOB_RATE_LIMIT_PER_S: '50'
  JOB_PAGE_SIZE: '100'
  METRICS_WINDOW_MINUTES: '3'
  // Pickup (docs/pickup.md): sources run on this timer, each at its own interval.
  PICKUP_SCHEDULE: pickupSchedule
  MIN_PICKUP_INTERVAL_S: string(minPickupIntervalSeconds)
  PICKUP_DEDUP_DAYS: '5'
  PICKUP_MAX_CONSECUTIVE_FAILURES: '5'
  // Control (docs/control.md): how old an instance's view of pause and breaker may get; the control timer.
  CONTROL_REFRESH_S: '2'
  CONTROL_SCHEDULE: '*/10 * * * * *'
  // Alerts (docs/alerts.md): the timer; email through ACS when deployed (webhook and Teams need nothing here).
  ALERT_SCHEDULE: alertSchedule
  ALERT_EMAIL_BACKEND: deployAlertEmail ? 'acs' : 'off'
  ALERT_EMAIL_SENDER: deployAlertEmail ? alertEmail.outputs.senderAddress : ''
  ALERT_ACS_ENDPOINT: deployAlertEmail ? alertEmail.outputs.endpoint : ''
  ALERT_ACS_CLIENT_ID: identity.outputs.clientId
  // Endpoints must be public addresses in Azure: no loopback, private, link-local or platform
  // addresses (metadata is refused regardless). Set true only with VNet integration and a reason.
  ALLOW_PRIVATE_ENDPOINTS: 'false'
  ENDPOINT_SECRET_SETTINGS: deployKeyVault ? join(endpointSecretNames, ',') : ''
  // Portal and API callers sign in with Entra ID through App Service Authentication (easyAuth below)
  // and need the app roles; the app refuses every call if authentication is ever switched off.
  AUTH_MODE: 'entra'
}

// What App Service Authentication lets through unauthenticated. Public: health (probes), the OpenAPI
// document, the portal's page, static files and sign-in config (they hold no data; the API behind them
// needs a role). Ingest: the senders' route, POST /api/ingest/{integration}, whose only function keeps
// its function key (AuthLevel.FUNCTION) in every mode. An excluded path matches exactly or by a
// trailing /* only, so ingest has a prefix of its own: /api/integrations/* would let through every
// config, failure and job route. DESIGN.md's /api/integrations/{id}/messages stays behind sign-in.
var anonymousPaths = [
  '/api/health'
  '/api/openapi.json'
  '/api/portal'
  '/api/portal/*'
]
var ingestPaths = [
  '/api/ingest/*'
]

module functionApp 'modules/function-app.bicep' = {
  name: 'functionApp'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    planId: plan.outputs.resourceId
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    deploymentBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: applicationInsights.outputs.name
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    appSettings: union(storageConnectionSettings, serviceBusConnectionSettings, appBehaviourSettings)
    keyVaultReferenceSettings: deployKeyVault ? endpointSecretReferences : []
  }
  // The host starts as soon as the site exists: give it its data roles first.
  dependsOn: [
    rbac
  ]
}

module easyAuth 'modules/easy-auth.bicep' = {
  name: 'easyAuth'
  scope: rg
  params: {
    functionAppName: functionApp.outputs.name
    clientId: authClientId
    excludedPaths: concat(anonymousPaths, ingestPaths)
  }
}

// azd writes these into .azure/<env>/.env. Names and endpoints only: there are no secrets to output.
output AZURE_LOCATION string = location
output AZURE_RECOVERY_LOCATION string = recoveryLocation
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_RECOVERY_STORAGE_ACCOUNT_NAME string = recoveryStorage.outputs.name
output AZURE_SERVICE_BUS_NAMESPACE string = deployServiceBus ? serviceBusNamespaceName : ''
output AZURE_KEY_VAULT_NAME string = deployKeyVault ? keyVaultName : ''
output AZURE_COMMUNICATION_SERVICE_NAME string = deployAlertEmail ? communicationServiceName : ''
output REBOUND_PREFIX string = prefix
