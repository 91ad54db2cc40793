// The landing page only translates itself; joining starts from a link.
import { createI18n } from './i18n.js';

const i18n = createI18n();
i18n.apply();
document.getElementById('btn-lang').addEventListener('click', () => i18n.toggle());
