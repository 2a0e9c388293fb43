import "reflect-metadata"; // @peculiar/x509 (through tsyringe) needs the Reflect metadata API
import * as x509 from "@peculiar/x509";
import { generateKeyPairSync, randomBytes, webcrypto } from "node:crypto";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type KeyPair = webcrypto.CryptoKeyPair;
type Key = webcrypto.CryptoKey;

/**
 * A throwaway PKI for one local control plane: a CA, the apiserver's serving certificate, an
 * admin client certificate (system:masters) and the service-account signing key pair. Lives
 * only in the run's temp dir (0600 files) and dies with it.
 */
export interface Pki {
  caCert: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  /** RSA key that signs service-account tokens (RS256, as most clusters use). */
  saSigningKey: string;
  saPublicKey: string;
}

const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

async function ecKeys(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as KeyPair;
}

async function pkcs8Pem(key: Key): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

function serial(): string {
  // Positive 16-byte serial (top bit clear).
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  return b.toString("hex");
}

export interface PkiOptions {
  /** SANs of the serving certificate. */
  ipAddresses: string[];
  dnsNames: string[];
  validityHours?: number;
}

export async function generatePki(opts: PkiOptions): Promise<Pki> {
  const notBefore = new Date(Date.now() - 5 * 60_000); // tolerate small clock skew
  const notAfter = new Date(Date.now() + (opts.validityHours ?? 24) * 3600_000);
  const caKeys = await ecKeys();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: "CN=vault-k8s-conformance-ca",
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  async function leaf(subject: string, usage: "server" | "client") {
    const keys = await ecKeys();
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([usage === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
    ];
    if (usage === "server") {
      extensions.push(
        new x509.SubjectAlternativeNameExtension([
          ...opts.dnsNames.map((value) => ({ type: "dns" as const, value })),
          ...opts.ipAddresses.map((value) => ({ type: "ip" as const, value })),
        ]),
      );
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: EC,
      extensions,
    });
    return { cert: cert.toString("pem"), key: await pkcs8Pem(keys.privateKey) };
  }

  const serving = await leaf("CN=kube-apiserver", "server");
  const admin = await leaf("CN=vkc-admin, O=system:masters", "client");
  const sa = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return {
    caCert: ca.toString("pem"),
    servingCert: serving.cert,
    servingKey: serving.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    saSigningKey: sa.privateKey,
    saPublicKey: sa.publicKey,
  };
}
