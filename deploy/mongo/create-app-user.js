// Creates the clinic's own database account, the one the API and the workers sign
// in with: read and write on the clinic's database, and nothing else (no other
// database, no user or server administration). The mongo image runs this once,
// on the first start of an empty data volume, with the account from .env.
const user = process.env.MONGO_APP_USER;
const password = process.env.MONGO_APP_PASSWORD;
const database = process.env.CLINIC_MONGO_DB || "clinic";
if (!user || !password) {
  throw new Error("MONGO_APP_USER and MONGO_APP_PASSWORD must be set");
}
db.getSiblingDB("admin").createUser({
  user: user,
  pwd: password,
  roles: [{ role: "readWrite", db: database }],
});
