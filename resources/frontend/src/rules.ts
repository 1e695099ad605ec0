// The evaluator of the cross-field rules of `core/validation/`, for the generated
// `src/services/rules.ts` of every app: the browser checks a body exactly as the server does.
//
// Rules use the portable subset of JSONLogic that `prefiq codegen` admits (strict equality,
// comparisons of numbers, `!`, `and`, `or`, `if`, `in` over literals), so this evaluator, the
// server's datalogic-rs and json-logic-js agree on every rule; a shared corpus of cases proves it.

/** A JSONLogic condition, as published under `x-prefiq-rules`. */
export type Logic = boolean | number | string | null | Logic[] | { [operator: string]: Logic };

/** One rule: a body is valid when `condition` is true. */
export interface Rule {
  id: string;
  condition: Logic;
  blame: string[];
  message: string;
}

/** One member blamed by a broken rule: the shape of an entry of a 422's `errors`. */
export interface RuleError {
  pointer: string;
  detail: string;
  keyword: "x-prefiq-rules";
}

function member(data: unknown, path: string): unknown {
  let value: unknown = data;
  for (const segment of path.split(".")) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
    value = (value as Record<string, unknown>)[segment];
    if (value === undefined) return null;
  }
  return value;
}

/** Evaluates `logic` (of the portable subset) against `data`. */
export function evaluate(logic: Logic, data: unknown): unknown {
  if (logic === null || typeof logic !== "object") return logic;
  if (Array.isArray(logic)) return logic.map((item) => evaluate(item, data));
  const [operator, operands] = Object.entries(logic)[0] ?? ["", null];
  const args: Logic[] = Array.isArray(operands) ? operands : [operands];
  const at = (i: number): unknown => evaluate(args[i] ?? null, data);
  switch (operator) {
    case "var":
      return member(data, String(args[0]));
    case "===":
      return at(0) === at(1);
    case "!==":
      return at(0) !== at(1);
    case "<":
      return Number(at(0)) < Number(at(1));
    case "<=":
      return Number(at(0)) <= Number(at(1));
    case ">":
      return Number(at(0)) > Number(at(1));
    case ">=":
      return Number(at(0)) >= Number(at(1));
    case "!":
      return at(0) !== true;
    case "and":
      return args.every((_, i) => at(i) === true);
    case "or":
      return args.some((_, i) => at(i) === true);
    case "if": {
      let i = 0;
      for (; i + 1 < args.length; i += 2) if (at(i) === true) return at(i + 1);
      return at(i);
    }
    case "in": {
      const list = at(1);
      return Array.isArray(list) && list.includes(at(0));
    }
    default:
      throw new Error(`\`${operator}\` is not an operator of the portable subset`);
  }
}

/** The errors of `body` under `rules`, in rule order. */
export function check(rules: readonly Rule[], body: unknown): RuleError[] {
  const errors: RuleError[] = [];
  for (const rule of rules) {
    if (evaluate(rule.condition, body) === true) continue;
    for (const pointer of rule.blame) errors.push({ pointer, detail: rule.message, keyword: "x-prefiq-rules" });
  }
  return errors;
}
