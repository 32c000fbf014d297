import { create, type DescFile, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { reflectionV1, reflectionV1alpha } from "@service-chat/api";

type Request = reflectionV1.ServerReflectionRequest;
type Response = reflectionV1.ServerReflectionResponse;

/** NOT_FOUND, as the reflection protocol's error responses carry gRPC codes. */
const NOT_FOUND = 5;

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) over the services this process serves,
 * so that grpcurl and `buf curl` work without the .proto files: the list of services, and for a
 * symbol or a file name its file descriptor with every file it imports. It serves only the API's
 * schema, which is public, so it needs no token (server/auth.ts lets it through).
 */
export function addReflection(router: ConnectRouter): void {
  const services = [...new Set(router.handlers.map((h) => h.service))];
  const index = new Index(services);
  const impl = {
    async *serverReflectionInfo(requests: AsyncIterable<Request>) {
      for await (const req of requests) yield index.answer(req);
    },
  };
  router.service(reflectionV1.ServerReflection, impl as ServiceImpl<typeof reflectionV1.ServerReflection>);
  router.service(
    reflectionV1alpha.ServerReflection,
    impl as unknown as ServiceImpl<typeof reflectionV1alpha.ServerReflection>,
  );
}

class Index {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly serviceNames: string[];

  constructor(services: DescService[]) {
    this.serviceNames = [
      ...services.map((s) => s.typeName),
      reflectionV1.ServerReflection.typeName,
      reflectionV1alpha.ServerReflection.typeName,
    ];
    for (const s of [...services, reflectionV1.ServerReflection, reflectionV1alpha.ServerReflection]) {
      this.addFile(s.file);
    }
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    const add = (name: string) => this.symbols.set(name, file);
    for (const s of file.services) {
      add(s.typeName);
      for (const m of s.methods) add(`${s.typeName}.${m.name}`);
    }
    const messages = [...file.messages];
    while (messages.length > 0) {
      const m = messages.pop();
      if (!m) break;
      add(m.typeName);
      messages.push(...m.nestedMessages);
      for (const e of m.nestedEnums) add(e.typeName);
    }
    for (const e of file.enums) add(e.typeName);
    for (const d of file.dependencies) this.addFile(d);
  }

  answer(req: Request): Response {
    const base = { validHost: req.host, originalRequest: req };
    const r = req.messageRequest;
    if (r.case === "listServices") {
      return create(reflectionV1.ServerReflectionResponseSchema, {
        ...base,
        messageResponse: {
          case: "listServicesResponse",
          value: { service: this.serviceNames.map((name) => ({ name })) },
        },
      });
    }
    let file: DescFile | undefined;
    if (r.case === "fileByFilename") file = this.files.get(r.value);
    if (r.case === "fileContainingSymbol") file = this.symbols.get(r.value.replace(/^\./, ""));
    if (!file) {
      const what =
        r.case === "fileByFilename"
          ? `file ${r.value}`
          : r.case === "fileContainingSymbol"
            ? `symbol ${r.value}`
            : "extensions";
      return create(reflectionV1.ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } },
      });
    }
    return create(reflectionV1.ServerReflectionResponseSchema, {
      ...base,
      messageResponse: {
        case: "fileDescriptorResponse",
        value: { fileDescriptorProto: withImports(file).map((f) => toBinary(FileDescriptorProtoSchema, f.proto)) },
      },
    });
  }
}

/** The file and every file it imports, transitively, each once. */
function withImports(file: DescFile): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (seen.has(f.proto.name)) return;
    seen.set(f.proto.name, f);
    for (const d of f.dependencies) visit(d);
  };
  visit(file);
  return [...seen.values()];
}
