/* Keeps the library non-empty until the first reconciler lands. */
int kinfer_reconcilers_placeholder(void);
int kinfer_reconcilers_placeholder(void) { return 0; }
