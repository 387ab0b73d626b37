// One keyless storage account: identity (Entra ID) access only, HTTPS + TLS 1.2, no anonymous blobs.
// Native resources rather than the AVM storage-account module on purpose: these settings are the
// security posture the issue promises, and checkov can only check what it can see (infra/README.md).

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Region of the account. The recovery account passes recoveryLocation here.')
param location string

param tags object = {}

@description('Replication. Geo-redundant by default; the recovery account is a second failure domain on top.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_GRS'

@description('Blob containers created with the account (the code creates its own queues, tables and containers on first use).')
param containers array = []

@description('Blob name prefixes ("container/prefix") the lifecycle rule deletes after deleteAfterDays; empty: no rule.')
param lifecycleDeletePrefixes array = []

@description('Days after the last modification at which the lifecycle rule deletes a blob under lifecycleDeletePrefixes.')
@minValue(1)
param deleteAfterDays int = 8

@description('Days a deleted blob or container stays recoverable (soft delete).')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 7

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches storage over its public endpoint, and it is not a "trusted Azure service" that the firewall's bypass admits; defaultAction Deny would cut the app off. Access needs an Entra ID token with a data role (shared keys are disabled). A VNet + private endpoint variant is listed as follow-up in infra/README.md.
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: the public endpoint must stay reachable for the app without VNet integration; anonymous and key-based access are both off.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    // Identity only: no account keys, no account/service SAS. AzureWebJobsStorage__credential=managedidentity.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    isHnsEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    // Only user delegation SAS can exist with shared keys off; keep even those short-lived.
    sasPolicy: {
      sasExpirationPeriod: '0.01:00:00'
      expirationAction: 'Log'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containers: {
    parent: blobService
    name: container
    properties: {
      publicAccess: 'None'
    }
  }
]

// Backstop for the retention timer: payload blobs the purge missed (a crash, a bug) still go.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (!empty(lifecycleDeletePrefixes)) {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          enabled: true
          name: 'deleteExpiredPayloads'
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: lifecycleDeletePrefixes
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: deleteAfterDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
