// @prefiq/frontend/client: what a plain API client needs (requests, validators, rules) and
// nothing that needs React. Every generated `src/services/*.ts` imports from here; the screens
// import the package's main entry, which re-exports all of this.
export { ApiError, createClient, unwrap } from "./core.js";
export type { Call, Client, ClientConfig, Err, Ok, RequestOptions } from "./core.js";
export { check, evaluate } from "./rules.js";
export type { Logic, Rule, RuleError } from "./rules.js";
export { MAX_ERRORS, checkFormat, createValidator, escape } from "./validate.js";
export type { Definitions, RuleCheck, Schema, ValidationError } from "./validate.js";
