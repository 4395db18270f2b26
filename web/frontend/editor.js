// The one entry point of the browser editor bundle: CodeMirror 6 with the
// languages crawlfleet projects hold. static/editor.js uses window.CrawlfleetEditor.
import { EditorView, basicSetup } from "codemirror";
import { EditorState, Compartment } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { json } from "@codemirror/lang-json";
import { yaml } from "@codemirror/lang-yaml";
import { javascript } from "@codemirror/lang-javascript";

const LANGUAGES = {
  py: python, json: json, yaml: yaml, yml: yaml, js: javascript, mjs: javascript,
};

export function languageFor(path) {
  const ext = (path.split(".").pop() || "").toLowerCase();
  const make = LANGUAGES[ext];
  return make ? make() : [];
}

// A CodeMirror view in `parent`; onChange(text) after every edit.
// `nonce`: the page's CSP style nonce, for the <style> CodeMirror adds.
export function create(parent, { text, path, readOnly, onChange, nonce }) {
  const language = new Compartment();
  const editable = new Compartment();
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: text || "",
      extensions: [
        basicSetup,
        nonce ? EditorView.cspNonce.of(nonce) : [],
        keymap.of([indentWithTab]),
        language.of(languageFor(path || "")),
        editable.of(EditorState.readOnly.of(!!readOnly)),
        EditorView.updateListener.of((u) => { if (u.docChanged && onChange) onChange(u.state.doc.toString()); }),
      ],
    }),
  });
  return {
    view,
    // Show another file: its text and its language, keeping the view.
    setText(newText, newPath) {
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: newText },
        effects: [language.reconfigure(languageFor(newPath || ""))],
      });
    },
    getText() { return view.state.doc.toString(); },
    languageName(p) { const e = (p.split(".").pop() || "").toLowerCase(); return LANGUAGES[e] ? e : "text"; },
  };
}
