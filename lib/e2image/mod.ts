/**
 * The e2image module of fsimage (work in progress).
 *
 * @module
 */
export {};
