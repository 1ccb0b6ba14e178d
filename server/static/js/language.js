// The language picker: any element marked `data-language-picker` gets a labelled <select> of
// the shipped catalogs (/app-config.json `languages`). A choice is kept in
// localStorage["proctor.locale"], which js/i18n.js reads before the browser's languages (a
// token's `locale` claim, set by an LTI launch, still comes first), and the page reloads in it.
import { appConfig, el, localStore } from "./common.js";
import { CHOICE_KEY, lang, t } from "./i18n.js";

export async function languagePickers() {
  const slots = document.querySelectorAll("[data-language-picker]");
  if (!slots.length) return;
  const languages = (await appConfig()).languages || [];
  if (languages.length < 2) return;
  slots.forEach((slot, i) => {
    const id = `language-${i}`;
    const select = el("select", { id, onchange: () => {
      localStore.setItem(CHOICE_KEY, select.value); // a framed page refused storage keeps it in memory
      location.reload();
    } }, languages.map((l) => el("option", { value: l.id, lang: l.id, dir: l.dir, selected: l.id === lang, translate: "no" }, l.name)));
    slot.replaceChildren(el("label", { for: id }, t("language.label")), " ", select);
    slot.hidden = false;
  });
}

languagePickers();
