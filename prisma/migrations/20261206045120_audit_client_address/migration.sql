-- AlterTable
ALTER TABLE "AuditLog" ADD COLUMN "clientAddress" TEXT;
