// Test harness: one client-credentials token request with the real @azure/msal-node.
//
// stdin:  ONE JSON object
//   {authority, clientId, scopes: [...], knownAuthorities: [...],
//    clientSecret?, clientAssertion? (string), protocolMode? ("AAD" | "OIDC"),
//    clientCertificate?: {thumbprintSha256, privateKey (PEM), x5c (PEM chain)}}
// stdout: ONE JSON line
//   success: {"ok": true, "accessToken", "expiresOn" (ISO 8601 or null), "tokenType", "fromCache"}
//   failure: {"ok": false, "errorCode", "errorMessage", "subError", "correlationId"}
//            (+ "errorNo" and "status" when msal-node reports them)
// Exit code 0 in both cases; non-zero only when the harness itself crashes (bad input, missing module).
//
// TLS trust comes from NODE_EXTRA_CA_CERTS, which Node reads at start-up (the caller sets it).
// Set KEYLESS_MSAL_NODE_LOG=1 to copy msal-node's log (PII off) to stderr.

import { ConfidentialClientApplication, LogLevel } from "@azure/msal-node";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function emit(result) {
  // Write, then exit once the pipe has taken the line (keep-alive sockets must not hold us).
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
}

function buildAuth(input) {
  if (typeof input.authority !== "string" || typeof input.clientId !== "string") {
    throw new TypeError("input needs string 'authority' and 'clientId'");
  }
  const auth = {
    clientId: input.clientId,
    authority: input.authority,
    knownAuthorities: Array.isArray(input.knownAuthorities) ? input.knownAuthorities : [],
  };
  if (input.clientSecret !== undefined && input.clientSecret !== null) {
    auth.clientSecret = input.clientSecret;
  }
  if (input.clientAssertion !== undefined && input.clientAssertion !== null) {
    if (typeof input.clientAssertion !== "string") {
      throw new TypeError("'clientAssertion' must be a string (the signed JWT)");
    }
    auth.clientAssertion = input.clientAssertion;
  }
  if (input.clientCertificate !== undefined && input.clientCertificate !== null) {
    const cert = input.clientCertificate;
    auth.clientCertificate = { privateKey: cert.privateKey };
    if (cert.thumbprintSha256 !== undefined) auth.clientCertificate.thumbprintSha256 = cert.thumbprintSha256;
    if (cert.thumbprint !== undefined) auth.clientCertificate.thumbprint = cert.thumbprint;
    if (cert.x5c !== undefined) auth.clientCertificate.x5c = cert.x5c;
  }
  return auth;
}

function buildSystem(input) {
  const loggerOptions = { piiLoggingEnabled: false };
  if (process.env.KEYLESS_MSAL_NODE_LOG) {
    loggerOptions.logLevel = LogLevel.Verbose;
    loggerOptions.loggerCallback = (_level, message) => process.stderr.write(`[msal-node] ${message}\n`);
  }
  const system = { loggerOptions };
  if (input.protocolMode !== undefined && input.protocolMode !== null) {
    system.protocolMode = input.protocolMode;
  }
  return system;
}

function describeError(error) {
  const result = {
    ok: false,
    errorCode: error?.errorCode ?? error?.code ?? error?.name ?? "unknown_error",
    errorMessage: error?.errorMessage ?? error?.message ?? String(error),
    subError: error?.subError ?? "",
    correlationId: error?.correlationId ?? "",
  };
  if (error?.errorNo !== undefined) result.errorNo = error.errorNo;
  if (error?.status !== undefined) result.status = error.status;
  if (error?.errorCode === undefined) {
    // Not an MSAL AuthError: keep the stack for whoever reads stderr.
    process.stderr.write(`${error?.stack ?? error}\n`);
  }
  return result;
}

const input = JSON.parse(await readStdin());
if (input === null || typeof input !== "object" || Array.isArray(input)) {
  throw new TypeError("stdin must hold one JSON object");
}
if (!Array.isArray(input.scopes)) {
  throw new TypeError("input needs 'scopes': [...]");
}

const app = new ConfidentialClientApplication({ auth: buildAuth(input), system: buildSystem(input) });

let result;
try {
  const response = await app.acquireTokenByClientCredential({ scopes: input.scopes });
  if (response === null) {
    result = {
      ok: false,
      errorCode: "null_response",
      errorMessage: "acquireTokenByClientCredential returned null",
      subError: "",
      correlationId: "",
    };
  } else {
    result = {
      ok: true,
      accessToken: response.accessToken,
      expiresOn: response.expiresOn ? response.expiresOn.toISOString() : null,
      tokenType: response.tokenType,
      fromCache: response.fromCache,
    };
  }
} catch (error) {
  result = describeError(error);
}
emit(result);
