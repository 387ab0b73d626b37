// Data-plane roles of the app's user-assigned identity: exactly what the code and the Functions host
// use, each scoped to the one resource it is needed on. No control-plane roles, no account keys.

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

@description('Primary storage account: AzureWebJobsStorage (host + app queues, tables, payload blobs, deployment package).')
param storageAccountName string

@description('Recovery storage account: RecoveryStorage (recovery queue and its payload container).')
param recoveryStorageAccountName string

@description('Application Insights component the app sends telemetry to with Entra ID auth.')
param applicationInsightsName string

@description('Service Bus namespace of the recovery queue; empty when Service Bus is not deployed.')
param serviceBusNamespaceName string = ''

@description('The recovery queue in that namespace.')
param serviceBusQueueName string = 'recovery'

@description('Key Vault holding the secrets endpoint headers reference; empty when no vault is deployed.')
param keyVaultName string = ''

// Built-in role definition ids (the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource recoveryStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: recoveryStorageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = if (!empty(keyVaultName)) {
  name: keyVaultName
}

resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = if (!empty(serviceBusNamespaceName)) {
  name: serviceBusNamespaceName
}

resource serviceBusQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' existing = if (!empty(serviceBusNamespaceName)) {
  parent: serviceBusNamespace
  name: serviceBusQueueName
}

// Storage Blob Data Owner, primary account: the Functions host requires Owner (not Contributor) for
// an identity-based AzureWebJobsStorage (it manages blob leases and its own containers: timer
// schedules, singleton locks, host keys); Flex also reads the deployment package container with it.
// The app's `payloads` container (claim-check bodies) is covered by the same role.
resource storageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor, primary account: the queue triggers on `inbound` (and its shards
// `inbound-<n>`, INBOUND_SHARDS) and `jobs` (read, delete, and the host's `*-poison` queues), requeues
// with a visibility delay, the recovery sweep draining the poison queues and listing shard queues
// beyond the setting (queues/read), and creating queues on first use.
resource storageQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor, primary account: integrations, failures, failuresummary, jobs (and
// the job lock rows), errorwindow and recoverystate tables, created on first use.
resource storageTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor, recovery account: park messages on `recovery`, the sweep receives
// and deletes them, GET /api/health and GET /api/recovery read its depth, created on first use.
resource recoveryQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recoveryStorage.id, principalId, roles.storageQueueDataContributor)
  scope: recoveryStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor, recovery account: bodies too large to park inline go to the
// `recoverypayloads` container beside the queue (write, read back by the sweep, delete). Contributor,
// not Owner: no host feature uses this account.
resource recoveryBlobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recoveryStorage.id, principalId, roles.storageBlobDataContributor)
  scope: recoveryStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Azure Service Bus Data Sender, recovery queue only: parking a message when RECOVERY_BACKEND=servicebus.
resource serviceBusDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(serviceBusNamespaceName)) {
  name: guid(serviceBusQueue.id, principalId, roles.serviceBusDataSender)
  scope: serviceBusQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Azure Service Bus Data Receiver, recovery queue only: the sweep receives (peek-lock) and completes
// parked messages, and peeks to count them for GET /api/recovery.
resource serviceBusDataReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(serviceBusNamespaceName)) {
  name: guid(serviceBusQueue.id, principalId, roles.serviceBusDataReceiver)
  scope: serviceBusQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher, Application Insights component: Entra ID-authenticated telemetry
// ingestion (APPLICATIONINSIGHTS_AUTHENTICATION_STRING); the component accepts nothing else.
resource monitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Secrets User, the vault only (if deployed): the platform reads the secrets behind the
// Key Vault references in ENDPOINT_SECRET_SETTINGS with this identity (keyVaultReferenceIdentity).
// Read only: no role here can write, list keys or manage the vault.
resource keyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(keyVaultName)) {
  name: guid(keyVault.id, principalId, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
