// Starts GraphiQL against this server's GraphQL endpoint. A file of its
// own rather than an inline script, so that the page's Content Security
// Policy can allow scripts from this server only.
"use strict";
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({
      url: new URL("/graphql", window.location.origin).toString(),
      fetch: (url, options = {}) => fetch(url, { ...options, credentials: "same-origin" }),
    }),
    defaultEditorToolsVisibility: true,
  }),
);
