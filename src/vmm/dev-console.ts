/** Registers the virtio-console device factories with the device builder (filled in by its owner). */
export {};
