/**
 * The ntfs module of fsimage (work in progress).
 *
 * @module
 */
export {};
