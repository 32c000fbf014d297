import { createDevSigner, type DevSigner } from "@service-chat/core";

let signer: Promise<DevSigner> | undefined;

/** The development signer of the servers under test (same key file), to mint tokens. */
export const signerFor = (keyFile: string): Promise<DevSigner> => {
  signer ??= createDevSigner(keyFile);
  return signer;
};
