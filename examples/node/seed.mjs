// The seed document's Node.js sample, made runnable: fetch a Google ID token from the metadata
// server, present it to the authority with @azure/msal-node, call the protected API.
//
// Against `keyless dev`:   . .keyless/dev.env && (cd examples/node && npm install && node seed.mjs)
// Against real clouds:     on Cloud Run with AZURE_AUTHORITY_HOST=https://login.microsoftonline.com
//                          (knownAuthorities is then not needed).
import * as msal from "@azure/msal-node";

const metadataHost = process.env.GCE_METADATA_HOST ?? "metadata.google.internal";
const authorityHost = process.env.AZURE_AUTHORITY_HOST;
const tenantId = process.env.AZURE_TENANT_ID;
const clientId = process.env.AZURE_CLIENT_ID;
const scope = process.env.KEYLESS_SCOPE;
const api = process.env.KEYLESS_API_URL;

async function googleIDToken() {
  const endpoint = `http://${metadataHost}/computeMetadata/v1/instance/service-accounts/default/identity`
    + "?audience=api://AzureADTokenExchange";
  const response = await fetch(endpoint, { headers: { "Metadata-Flavor": "Google" } });
  if (!response.ok) throw new Error(`metadata server: ${response.status}`);
  return response.text();
}

const selfHosted = !authorityHost.includes("login.microsoftonline.com");
const app = new msal.ConfidentialClientApplication({
  auth: {
    clientId,
    authority: `${authorityHost}/${tenantId}`,
    clientAssertion: googleIDToken, // called for each token request
    knownAuthorities: selfHosted ? [new URL(authorityHost).host] : [],
  },
});
const result = await app.acquireTokenByClientCredential({ scopes: [scope] });
const headers = { Authorization: `Bearer ${result.accessToken}` };
await fetch(`${api}/containers/examples`, { method: "PUT", headers });
const written = await fetch(`${api}/containers/examples/blobs/from-msal-node.txt`, {
  method: "PUT", headers, body: "hello from msal-node",
});
if (written.status !== 201) throw new Error(`blob-api: ${written.status}`);
console.log(`msal-node: token expires ${result.expiresOn.toISOString()}; wrote from-msal-node.txt`);
