"""The seed scenario with keyless's own SDK: WorkloadIdentityCredential picks the source from the
environment (here the metadata server), caches and refreshes the token, and plugs into httpx.

Against `keyless dev`:   . .keyless/dev.env && python examples/seed_keyless_credential.py
Against real clouds:     on Cloud Run with AZURE_TENANT_ID / AZURE_CLIENT_ID set; the authority
                         defaults to https://login.microsoftonline.com.
"""

import os

import httpx

from keyless.credential import KeylessAuth, WorkloadIdentityCredential

scope = os.environ["KEYLESS_SCOPE"]
with WorkloadIdentityCredential() as credential:
    token = credential.get_token(scope)
    print("keyless.credential: token expires at", token.expires_on)
    with httpx.Client(auth=KeylessAuth(credential, scope), base_url=os.environ["KEYLESS_API_URL"]) as api:
        api.put("/containers/examples").raise_for_status()
        written = api.put("/containers/examples/blobs/from-keyless.txt", content=b"hello, no secret")
        written.raise_for_status()
        listed = api.get("/containers/examples").json()
        print("keyless.credential: blobs now", [blob["name"] for blob in listed["blobs"]])
