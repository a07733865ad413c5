// Validates rendered objects against the Kubernetes OpenAPI schemas (kubernetes-models), the
// Prometheus Operator's CRD schemas (@kubernetes-models/prometheus-operator) and cert-manager's
// (@kubernetes-models/cert-manager). A kind none knows is an error: every object the chart
// renders must be checked.

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

function modulePath(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/'))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  if (apiVersion.startsWith('cert-manager.io/'))
    return `@kubernetes-models/cert-manager/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/** Throws with the object's kind/name and the schema's complaint. */
export async function validateObject(object: KubeObject): Promise<void> {
  const path = modulePath(object.apiVersion, object.kind);
  let model: ModelClass;
  try {
    const module = (await import(path)) as Record<string, ModelClass>;
    const found = module[object.kind];
    if (found === undefined) throw new Error(`no ${object.kind} in ${path}`);
    model = found;
  } catch (cause) {
    throw new Error(`no schema for ${object.apiVersion} ${object.kind} (${object.metadata.name})`, { cause });
  }
  try {
    new model(object).validate();
  } catch (cause) {
    throw new Error(`${object.kind} ${object.metadata.name} is invalid: ${(cause as Error).message}`, {
      cause,
    });
  }
}
