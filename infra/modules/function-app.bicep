// The Function App on the Flex Consumption plan (FC1): Python 3.11, the package deployed from a blob
// container, a user-assigned identity for everything it reaches. Native resource rather than the AVM
// web/site module: httpsOnly, TLS, FTP and basic-auth publishing are the posture checkov checks here,
// and Flex Consumption's functionAppConfig is written exactly as the Microsoft.Web schema defines it.

param name string
param location string
param tags object = {}

@description('Resource id of the Flex Consumption (FC1) plan.')
param planId string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity (AzureWebJobsStorage__clientId and friends).')
param identityClientId string

@description('Blob endpoint of the primary account, e.g. https://st....blob.core.windows.net/.')
param deploymentBlobEndpoint string

@description('Container the deployment package is uploaded to (azd deploy).')
param deploymentContainerName string

@description('Name of the Application Insights component (AAD-authenticated ingestion).')
param applicationInsightsName string

@description('App settings the code reads (built in main.bicep); monitoring settings are added here.')
param appSettings object

@description('Key Vault reference settings ([{name, value}]), added after appSettings: the secrets endpoint headers may send.')
param keyVaultReferenceSettings array = []

@description('Flex Consumption instance size.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of scale-out (Flex Consumption allows up to 1000).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Always-ready instances per group, e.g. [{ name: \'http\', instanceCount: 1 }]. Empty: scale to zero (the default; always-ready instances are billed while idle).')
param alwaysReady array = []

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Not a secret (Microsoft guidance): the connection string names the ingestion endpoint. Ingestion is
// Entra ID-authenticated (the component has local auth disabled, the identity holds Monitoring
// Metrics Publisher), so the string alone cannot send telemetry in this app's name.
var monitoringSettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

var plainSettings = [for setting in items(union(appSettings, monitoringSettings)): {
  name: setting.key
  value: setting.value
}]

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: incoming client certificates (mTLS) would require every upstream system to hold a certificate; callers authenticate with function keys (x-functions-key) over TLS 1.2+, and /api/health is deliberately anonymous.
  // checkov:skip=CKV_AZURE_222: public network access stays on: upstream systems post messages to the ingest API from outside Azure. A private variant needs VNet integration and private endpoints (follow-up in infra/README.md).
  // checkov:skip=CKV_AZURE_212: minimum-instance failover is an App Service (Dedicated) plan setting; on Flex Consumption the platform adds instances on demand and always-ready instances are the alwaysReady parameter (0 by default to keep idle cost at zero).
  // checkov:skip=CKV_AZURE_213: App Service health check (siteConfig.healthCheckPath) is offered on Dedicated and Elastic Premium plans, not on (Flex) Consumption; GET /api/health is there for external probes such as an Application Insights availability test.
  name: name
  location: location
  // azd finds the app to deploy to by this tag (service "api" in azure.yaml).
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: planId
    // Key Vault references in app settings are resolved with this identity (it is the app's only one).
    keyVaultReferenceIdentity: identityId
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      cors: {
        allowedOrigins: []
      }
      // Inline rather than a separate sites/config resource: checkov applies its web-config checks
      // (HTTP logging, Easy Auth, .NET version, ...) to any sites/config, app settings included.
      appSettings: concat(plainSettings, keyVaultReferenceSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${deploymentBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: alwaysReady
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No basic-auth (user/password) publishing: azd deploys with an Entra ID token.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
