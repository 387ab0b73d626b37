// Optional Key Vault for the secrets endpoint headers send (ENDPOINT_SECRET_SETTINGS): each such app
// setting is a Key Vault reference that the platform resolves with the app's identity
// (keyVaultReferenceIdentity on the site), so the secret is neither in the integration config nor in
// the app settings. Native resource rather than the AVM key-vault module for the reason storage is
// native: RBAC-only access, purge protection and network access are the posture checkov checks here,
// and it checks only what it can see (infra/README.md).

@description('Vault name: 3-24 letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(24)
param name string

param location string

param tags object = {}

@description('Days a deleted vault or secret stays recoverable. With purge protection nobody can shorten this, and the vault name stays taken for as long.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Flex Consumption without VNet integration resolves Key Vault references over the vault's public endpoint from outbound addresses that are not fixed, and it is not a "trusted service" the firewall bypass admits; defaultAction Deny would leave every reference unresolved. Access needs an Entra ID token and the Key Vault Secrets User role (RBAC only). Private endpoint + VNet integration is a follow-up in infra/README.md.
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109: the public endpoint must stay reachable for the app's reference resolution without VNet integration; every call still needs an Entra ID token and an RBAC role.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC only, no access policies: the app's identity holds Key Vault Secrets User on this vault
    // (modules/rbac.bicep); whoever adds the secrets needs Key Vault Secrets Officer.
    enableRbacAuthorization: true
    accessPolicies: []
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
