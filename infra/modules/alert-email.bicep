// Optional email for alerts (ALERT_EMAIL_BACKEND=acs): an Email Communication Service with an Azure
// managed domain (DoNotReply@<guid>.azurecomm.net, no DNS work), connected to a Communication Services
// resource the app sends through with its user-assigned identity. No access keys are used or output:
// the identity holds a custom role scoped to this one resource with only the actions sending email needs
// (learn.microsoft.com, "Send email with Microsoft Entra ID": read and write on the Communication Services
// resource, write on email services). Data stays in `dataLocation`.

param communicationServiceName string
param emailServiceName string

@description('Where the resources keep their data (an ACS data location, e.g. Europe, United States).')
param dataLocation string = 'Europe'

param tags object = {}

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource domain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [
      domain.id
    ]
  }
}

// Least privilege for sending: a role with exactly the actions the send operation checks, on this resource only.
resource sendEmailRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, communicationServiceName, 'rebound-email-sender')
  properties: {
    roleName: 'Rebound email sender (${communicationServiceName})'
    description: 'Send email through one Azure Communication Services resource (Rebound alerts).'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Communication/CommunicationServices/Read'
          'Microsoft.Communication/CommunicationServices/Write'
          'Microsoft.Communication/EmailServices/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

resource sendEmail 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, principalId, sendEmailRole.id)
  scope: communicationService
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: sendEmailRole.id
  }
}

output endpoint string = 'https://${communicationService.properties.hostName}'
output senderAddress string = 'DoNotReply@${domain.properties.mailFromSenderDomain}'
