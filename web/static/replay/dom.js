// The replay page builds its DOM with the console's builder: text always goes
// in as text nodes, never as markup.
export { h, replace } from '../console/dom.js';
