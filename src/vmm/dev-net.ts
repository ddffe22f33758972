/** Registers the virtio-net device factories with the device builder (filled in by its owner). */
export {};
