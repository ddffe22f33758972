/** tsvm's version, as `tsvm --version` and the drop-in binaries report it (package.json). */
export const TSVM_VERSION = '0.1.0';
