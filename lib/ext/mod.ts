/**
 * The ext module of fsimage (work in progress).
 *
 * @module
 */
export {};
