/**
 * Error type for everything in src/images: bad or corrupt input (archives,
 * indices, signatures), checksum mismatches and failed downloads. Messages
 * are a single line meant to be shown to the user as-is.
 */

/** A one-line, user-facing error about an image, package or archive. */
export class ImageError extends Error {
  /** Create an error; `message` should be a single line. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageError';
  }
}
