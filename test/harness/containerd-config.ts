// The config.toml of a private containerd: everything under its temp dir, the
// CRI plugin off unless asked for.
import * as path from 'node:path';

export interface CriPluginOptions {
  /** The pod sandbox image; import it before the first pod, or the plugin tries to pull it. */
  sandboxImage: string;
  /** CRI runtime handlers: handler name → runtime_type (e.g. wasmts → io.containerd.wasmts.v1). */
  runtimes: Record<string, string>;
}

export interface ContainerdLayout {
  tmp: string;
  root: string;
  state: string;
  address: string;
  ttrpcAddress: string;
}

function tomlString(s: string): string {
  return JSON.stringify(s); // TOML basic strings accept JSON escapes for our paths
}

/**
 * The CRI plugin's section (config version 2, containerd 1.6/1.7). Its own
 * state lives under root/state; CNI dirs point into the temp dir, where none
 * is configured (host-network pods need no CNI); the streaming server takes a
 * free port (the default "0"), so instances do not collide.
 */
function criPluginConfig(cri: CriPluginOptions, tmp: string, snapshotter: string): string[] {
  const section = 'plugins."io.containerd.grpc.v1.cri"';
  const lines = [
    `  [${section}]`,
    `    sandbox_image = ${tomlString(cri.sandboxImage)}`,
    `    [${section}.cni]`,
    `      bin_dir = ${tomlString(path.join(tmp, 'cni', 'bin'))}`,
    `      conf_dir = ${tomlString(path.join(tmp, 'cni', 'net.d'))}`,
    `    [${section}.containerd]`,
    `      snapshotter = ${tomlString(snapshotter)}`,
  ];
  // Naming any runtime replaces the plugin's default map, whose runc entry the default handler needs.
  for (const [handler, runtimeType] of Object.entries({ runc: 'io.containerd.runc.v2', ...cri.runtimes })) {
    if (!/^[A-Za-z0-9_-]+$/.test(handler))
      throw new Error(
        `startContainerd: CRI runtime handler name ${JSON.stringify(handler)} needs quoting; use [A-Za-z0-9_-]`,
      );
    lines.push(
      `      [${section}.containerd.runtimes.${handler}]`,
      `        runtime_type = ${tomlString(runtimeType)}`,
    );
  }
  return [...lines, ''];
}

export function containerdConfig(l: ContainerdLayout, snapshotter: string, cri?: CriPluginOptions): string {
  return [
    'version = 2',
    `root = ${tomlString(l.root)}`,
    `state = ${tomlString(l.state)}`,
    `temp = ${tomlString(path.join(l.tmp, 'temp'))}`,
    cri ? 'disabled_plugins = []' : 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '',
    '[grpc]',
    `  address = ${tomlString(l.address)}`,
    '',
    '[ttrpc]',
    `  address = ${tomlString(l.ttrpcAddress)}`,
    '',
    '[debug]',
    '  level = "debug"',
    '',
    '[plugins]',
    '  [plugins."io.containerd.internal.v1.opt"]',
    `    path = ${tomlString(path.join(l.tmp, 'opt'))}`,
    '',
    ...(cri ? criPluginConfig(cri, l.tmp, snapshotter) : []),
  ].join('\n');
}
