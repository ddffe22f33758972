/** Registers the virtio-blk device factories with the device builder (filled in by its owner). */
export {};
