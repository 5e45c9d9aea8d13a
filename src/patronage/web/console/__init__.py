"""The admin console: staff pages under / and /console/, signed in with the staff session cookie."""
