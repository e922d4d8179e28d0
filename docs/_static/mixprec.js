// A page opened from disk may not fetch other files, so search cannot load the
// excerpts it shows under each result; list the results without them.
if (window.location.protocol === "file:") {
  DOCUMENTATION_OPTIONS.SHOW_SEARCH_SUMMARY = false;
}
