// JSON Schema string `format`s we can generate, each as a regex whose every match is valid for
// the format (a subset where the full rule is irregular: February has 28 days, no leap seconds).
const day31 = '(0[1-9]|[12][0-9]|3[01])';
const day30 = '(0[1-9]|[12][0-9]|30)';
const day28 = '(0[1-9]|1[0-9]|2[0-8])';
const date = `[0-9]{4}-((0[13578]|1[02])-${day31}|(0[469]|11)-${day30}|02-${day28})`;
const offset = '(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])';
const time = `([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?${offset}`;
const octet = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const label = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';

export const formatPatterns: Readonly<Record<string, string>> = {
  date,
  time,
  'date-time': `${date}T${time}`,
  uuid: '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
  email: `[a-zA-Z0-9_+-]+(\\.[a-zA-Z0-9_+-]+)*@(${label}\\.)+[a-z]{2,24}`,
  ipv4: `${octet}(\\.${octet}){3}`,
};
