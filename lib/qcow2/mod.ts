/**
 * The qcow2 module of fsimage (work in progress).
 *
 * @module
 */
export {};
