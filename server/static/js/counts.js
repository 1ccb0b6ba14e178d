// Counts as people write them: "1 student", "3 students", "0 flags" (Intl.PluralRules picks the
// form for the page's language; the nouns are English, as the rest of the pages).
const rules = new Intl.PluralRules(document.documentElement.lang || "en");

// count(3, "student") -> "3 students"; count(1, "person", "people") -> "1 person".
export function count(n, one, other = `${one}s`) {
  return `${n} ${rules.select(n) === "one" ? one : other}`;
}
