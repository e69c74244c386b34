-- CreateTable
CREATE TABLE "ManifestContent" (
    "digest" TEXT NOT NULL PRIMARY KEY,
    "content" BLOB NOT NULL
);
