/** Sizes like `512M`, `2G` (QEMU's -m spelling): defined once, with QEMU's other option syntax in src/vmm/qemu-opts.ts. */
export { parseSize } from '../vmm/qemu-opts.js';
