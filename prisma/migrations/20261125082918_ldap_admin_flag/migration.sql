-- AlterTable
ALTER TABLE "User" ADD COLUMN "ldapAdmin" BOOLEAN NOT NULL DEFAULT false;
