// An EBNF grammar some of whose rules are JSON Schemas: each name in `schemas` is a rule that
// matches one JSON value valid against that schema (the EBNF refers to it like any rule). Tool
// calls are built this way: fixed text around each tool's `parameters` schema, and JSON Schemas
// keep their own `$ref` documents and error paths.
import { InvalidGrammarError } from './errors.ts';
import { type Expr, type Grammar, type Rule, ref } from './grammar.ts';
import type { JsonFormatOptions } from './json-grammar.ts';
import { jsonSchemaGrammar } from './json-schema.ts';

const ruleName = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * `grammar` plus one rule per schema. Schema rules are renamed under `<name>::` (EBNF names
 * cannot hold ':'), so two schemas never share a rule name. `schemaParam(name)` is the request
 * field each schema came from (its errors name fields under it).
 */
export function withSchemaRules(
  grammar: Grammar,
  schemas: Readonly<Record<string, unknown>>,
  param: string,
  schemaParam: (name: string) => string,
  json: JsonFormatOptions,
): Grammar {
  const rules = new Map<string, Rule>(grammar.rules);
  for (const [name, schema] of Object.entries(schemas)) {
    if (!ruleName.test(name)) {
      throw new InvalidGrammarError(`schema rule name ${JSON.stringify(name)} is not a rule name`, param);
    }
    if (rules.has(name)) {
      throw new InvalidGrammarError(`rule "${name}" is defined both in the grammar and as a schema`, param);
    }
    const converted = jsonSchemaGrammar(schema, schemaParam(name), json);
    const prefix = `${name}::`;
    for (const [inner, rule] of converted.rules) {
      rules.set(prefix + inner, { ...rule, expr: renameRefs(rule.expr, prefix) });
    }
    rules.set(name, { expr: ref(prefix + converted.root) });
  }
  return { rules, root: grammar.root };
}

function renameRefs(expr: Expr, prefix: string): Expr {
  switch (expr.type) {
    case 'chars':
      return expr;
    case 'ref':
      return ref(prefix + expr.rule);
    case 'seq':
    case 'alt':
      return { type: expr.type, items: expr.items.map((item) => renameRefs(item, prefix)) };
    case 'repeat':
      return { ...expr, item: renameRefs(expr.item, prefix) };
    case 'separated':
      return {
        type: 'separated',
        items: expr.items.map((item) => ({ expr: renameRefs(item.expr, prefix), required: item.required })),
        separator: renameRefs(expr.separator, prefix),
      };
  }
}
