/**
 * The ntfsclone module of fsimage (work in progress).
 *
 * @module
 */
export {};
