/** A kubeconfig (JSON is valid YAML) with one cluster, one user and one context. */
export function adminKubeconfig(o: {
  name: string;
  server: string;
  caCert: string;
  clientCert?: string;
  clientKey?: string;
  token?: string;
}): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const user: Record<string, string> = {};
  if (o.clientCert && o.clientKey) {
    user["client-certificate-data"] = b64(o.clientCert);
    user["client-key-data"] = b64(o.clientKey);
  }
  if (o.token) user.token = o.token;
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: o.name, cluster: { server: o.server, "certificate-authority-data": b64(o.caCert) } }],
      users: [{ name: `${o.name}-admin`, user }],
      contexts: [{ name: o.name, context: { cluster: o.name, user: `${o.name}-admin` } }],
      "current-context": o.name,
    },
    null,
    2,
  );
}
