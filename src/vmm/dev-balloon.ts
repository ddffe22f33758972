/** Registers the virtio-balloon device factories with the device builder (filled in by its owner). */
export {};
