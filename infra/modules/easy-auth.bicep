// App Service Authentication ("Easy Auth", authsettingsV2) with Entra ID in front of the Function App.
// What it lets through and why, the token store, and what is not verified: infra/README.md, "Authentication".
// The app trusts the principal Easy Auth injects only while the platform says authentication is on
// (WEBSITE_AUTH_ENABLED), and checks the app roles itself (shared/auth.py, AUTH_MODE=entra).

@description('Name of the Function App to put authentication in front of.')
param functionAppName string

@description('Client id of the Entra ID app registration (created by infra/hooks/app_registration.py).')
@minLength(36)
@maxLength(36)
param clientId string

@description('Paths let through without a signed-in caller: exact paths, or a prefix ending in /*.')
param excludedPaths array

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// checkov applies its site-config checks to every Microsoft.Web/sites/config resource; this one holds the
// authentication settings only, and the properties those checks read belong to siteConfig (function-app.bicep).
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: checkov reads the classic authsettings shape (properties.enabled); this is authsettingsV2, switched on by properties.platform.enabled: true with requireAuthentication below.
  // checkov:skip=CKV_AZURE_63: HTTP logging (httpLoggingEnabled) is a siteConfig property (web server logs), not part of the authentication settings; requests are logged to Application Insights.
  // checkov:skip=CKV_AZURE_65: detailed error pages (detailedErrorLoggingEnabled) are a siteConfig property, not part of the authentication settings; errors are logged to Application Insights.
  // checkov:skip=CKV_AZURE_66: failed request tracing (requestTracingEnabled) is an IIS siteConfig property, not part of the authentication settings; requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_80: netFrameworkVersion is a siteConfig property for .NET apps; this resource is the authentication settings of a Python app.
  // checkov:skip=CKV_AZURE_88: Azure Files mounts (azureStorageAccounts) are a siteConfig property, not part of the authentication settings; the app keeps no files.
  // checkov:skip=CKV_AZURE_222: publicNetworkAccess is a property of the site (function-app.bicep, skipped there with its reason), not of its authentication settings.
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      // Every path needs a signed-in user or client but the excluded ones. Return401, not a redirect:
      // the setting is one for the whole app, and API callers (fetch() in the portal, automation
      // clients) need a status, not a login page. The portal's page and files are excluded (they hold
      // no data) and send the browser to /.auth/login/aad themselves when the API answers 401.
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: excludedPaths
    }
    httpSettings: {
      requireHttps: true
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          // v2 endpoint of this tenant: single-tenant sign-in, and the issuer of the v2 access tokens
          // the app registration asks for (requestedAccessTokenVersion 2).
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          // No client secret: browser sign-in uses the ID token (implicit grant of ID tokens only,
          // enabled on the registration); the app never calls another API as the user, so it needs no
          // access token of its own and keeps no secret to rotate.
        }
        validation: {
          // Client-credential tokens (automation clients) carry the client id as their audience (v2).
          allowedAudiences: [
            clientId
            'api://${clientId}'
          ]
        }
      }
    }
    login: {
      // Off: the app reads who is calling from X-MS-CLIENT-PRINCIPAL and calls no API on the user's
      // behalf, so provider tokens need not be kept. On Flex Consumption a token store would need a
      // blob SAS URL (there is no shared file system), i.e. a secret, on accounts that refuse shared keys.
      tokenStore: {
        enabled: false
      }
      preserveUrlFragmentsForLogins: false
      allowedExternalRedirectUrls: []
      nonce: {
        validateNonce: true
      }
      cookieExpiration: {
        convention: 'FixedTime'
        timeToExpiration: '08:00:00'
      }
    }
  }
}
