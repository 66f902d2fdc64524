"""The seed scenario with unmodified MSAL Python: a Cloud Run workload gets a Google ID token from
its metadata server and presents it as a client assertion; no secret anywhere.

Against `keyless dev`:   . .keyless/dev.env && python examples/seed_msal.py
Against real clouds:     on Cloud Run, with AZURE_AUTHORITY_HOST=https://login.microsoftonline.com,
                         AZURE_TENANT_ID / AZURE_CLIENT_ID of your app (its federated credential:
                         issuer https://accounts.google.com, subject = the service account's unique id),
                         KEYLESS_SCOPE=<your API>/.default; drop instance_discovery=False.
"""

import os

import msal
import requests
from google.auth.transport.requests import Request
from google.oauth2 import id_token

AUDIENCE = "api://AzureADTokenExchange"  # what the federated credential expects


def google_id_token() -> str:
    # google-auth finds the metadata server (GCE_METADATA_HOST / GCE_METADATA_IP locally).
    return id_token.fetch_id_token(Request(), AUDIENCE)


authority_host = os.environ["AZURE_AUTHORITY_HOST"]
app = msal.ConfidentialClientApplication(
    os.environ["AZURE_CLIENT_ID"],
    authority=f"{authority_host}/{os.environ['AZURE_TENANT_ID']}",
    client_credential={"client_assertion": google_id_token},  # called for each token request
    instance_discovery="login.microsoftonline.com" in authority_host,  # off for a self-hosted authority
)
result = app.acquire_token_for_client(scopes=[os.environ["KEYLESS_SCOPE"]])
if "access_token" not in result:
    raise SystemExit(f"{result.get('error')}: {result.get('error_description')}")

api = os.environ["KEYLESS_API_URL"]
headers = {"Authorization": f"Bearer {result['access_token']}"}
requests.put(f"{api}/containers/examples", headers=headers, timeout=10).raise_for_status()
blob = f"{api}/containers/examples/blobs/from-msal.txt"
written = requests.put(blob, data=b"hello from MSAL", headers=headers, timeout=10)
written.raise_for_status()
print("MSAL: token expires in", result["expires_in"], "s; wrote", written.json()["name"])
