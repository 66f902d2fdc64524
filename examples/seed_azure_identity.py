"""The seed scenario with unmodified azure-identity: ClientAssertionCredential with a callback that
fetches the Google ID token, passed to an azure-core pipeline like any Azure SDK client.

Against `keyless dev`:   . .keyless/dev.env && python examples/seed_azure_identity.py
Against real clouds:     the same on Cloud Run with AZURE_AUTHORITY_HOST unset (login.microsoftonline.com).
"""

import os

from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest
from azure.identity import ClientAssertionCredential
from google.auth.transport.requests import Request
from google.oauth2 import id_token

credential = ClientAssertionCredential(
    tenant_id=os.environ["AZURE_TENANT_ID"],
    client_id=os.environ["AZURE_CLIENT_ID"],
    func=lambda: id_token.fetch_id_token(Request(), "api://AzureADTokenExchange"),
    authority=os.environ.get("AZURE_AUTHORITY_HOST"),
)
scope = os.environ["KEYLESS_SCOPE"]
pipeline = Pipeline(RequestsTransport(), policies=[BearerTokenCredentialPolicy(credential, scope)])
api = os.environ["KEYLESS_API_URL"]
pipeline.run(HttpRequest("PUT", f"{api}/containers/examples")).http_response.raise_for_status()
response = pipeline.run(
    HttpRequest("PUT", f"{api}/containers/examples/blobs/from-azure-identity.txt", content=b"hi")
)
response.http_response.raise_for_status()
print("azure-identity: wrote", response.http_response.json()["name"])
