import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { SignJWT, type JWTPayload } from "jose";
import { kubernetesKeyId } from "../gate/profile.ts";
import { registerSecret } from "../redact.ts";

/**
 * Service-account JWTs the harness signs itself, for the claims a real API server never issues
 * (a future nbf/iat) and for keys it does not hold (a foreign or rotated-out key). Every token is
 * registered as a secret.
 */

export interface SigningKey {
  privateKey: KeyObject;
  /** SPKI PEM of the public half (what pem_keys takes). */
  publicPem: string;
  /** The Kubernetes-style key id (sha256 of the DER SPKI, base64url), as the API server sets it. */
  kid: string;
}

function keyOf(privateKey: KeyObject): SigningKey {
  const publicPem = createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
  return { privateKey, publicPem, kid: kubernetesKeyId(publicPem) };
}

/** The cluster's own service-account signing key (local target: TargetInfo.kube.saSigningKeyFile). */
export async function clusterSigningKey(keyFile: string): Promise<SigningKey> {
  return keyOf(createPrivateKey(await readFile(keyFile, "utf8")));
}

/** A fresh RSA key no API server knows. */
export function foreignSigningKey(): SigningKey {
  return keyOf(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
}

/**
 * A bound-token-shaped JWT for namespace/name/uid with issuer and audience, signed with `key`;
 * `claims` overrides any claim (iat, nbf, exp in seconds).
 */
export async function signServiceAccountToken(
  key: SigningKey,
  o: { issuer: string; audience: string[]; namespace: string; name: string; uid: string; claims?: JWTPayload },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = {
    iss: o.issuer,
    aud: o.audience,
    sub: `system:serviceaccount:${o.namespace}:${o.name}`,
    iat: now - 60,
    nbf: now - 60,
    exp: now + 3600,
    jti: randomUUID(),
    "kubernetes.io": { namespace: o.namespace, serviceaccount: { name: o.name, uid: o.uid } },
    ...o.claims,
  };
  const jwt = await new SignJWT(payload).setProtectedHeader({ alg: "RS256", kid: key.kid }).sign(key.privateKey);
  return registerSecret(jwt);
}
