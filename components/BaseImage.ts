import * as pulumi from "@pulumi/pulumi";
import { HostSpec, ImageSpec } from "../config/spec";
import { shim, typed } from "../providers/shim";

export interface BaseImageArgs {
  /** The host whose pool receives the image. */
  readonly host: HostSpec;
  /** Volume name, and optionally a local source (uploaded once, sha256 checked) or none (must already be there). */
  readonly image: ImageSpec;
}

class BaseImageVolume extends pulumi.dynamic.Resource {
  declare readonly volume: pulumi.Output<string>;
  declare readonly uploaded: pulumi.Output<boolean>;
  constructor(name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    super(shim("providers/baseImage"), name, { ...props, uploaded: undefined }, typed(opts), "vm-infra", "BaseImageVolume");
  }
}

/** The base image present in one host's pool. */
export class BaseImage extends pulumi.ComponentResource {
  readonly volume: pulumi.Output<string>;
  readonly hostName: string;

  constructor(name: string, args: BaseImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vm-infra:index:BaseImage", name, {}, opts);
    this.hostName = args.host.name;
    const vol = new BaseImageVolume(`${name}-volume`, {
      hostName: args.host.name,
      uri: args.host.uri,
      pool: args.host.pool,
      volume: args.image.volume,
      source: args.image.source,
      sha256: args.image.sha256,
    }, { parent: this, deleteBeforeReplace: true }); // same volume name: the old one's delete (which keeps a used image) runs first
    this.volume = vol.volume;
    this.registerOutputs({ volume: this.volume });
  }
}
